//! Schema of the policy files (M4) and their validation as one set.
//!
//! ```text
//! <policy_dir>/brand.toml              the brand: services, contact rules, costs, calendar
//! <policy_dir>/dealers/<tenant>.toml   one dealer: opt-ins, budgets, channels, sender, slots, import
//! <policy_dir>/templates/<name>.toml   brand material, named by services
//! ```
//!
//! [`PolicySet::validate`] takes the files' texts (the caller reads them: the
//! daemon from its policy directory, `touchpoint policy check` from any
//! directory) and returns either a complete, cross-checked set or every error
//! found, each as `file:line: key.path: message`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

pub use crate::domain::{AnyStage, JourneyStage, VehicleStage};
use crate::domain::{Channel, ImportField};
use crate::money::Money;
use crate::template::Template;
use crate::toml_file::{invalid, parse_toml, ConfigError};
use crate::{Date, TenantId};

// ----- value types --------------------------------------------------------------

/// A date written as a TOML date (`2026-12-24`) or a string of that form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PolicyDate(pub Date);

impl<'de> Deserialize<'de> for PolicyDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Toml(toml::value::Datetime),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Toml(dt) => {
                if dt.time.is_some() || dt.offset.is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "{dt} is not a plain date (write 2026-12-24)"
                    )));
                }
                dt.to_string()
            }
            Raw::Text(s) => s,
        };
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(|d| PolicyDate(Date::from(d)))
            .map_err(|_| {
                serde::de::Error::custom(format!("{text:?} is not a date (write 2026-12-24)"))
            })
    }
}

/// A time of day `"HH:MM"`, as minutes after midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TimeOfDay(pub u16);

impl TimeOfDay {
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = s.split_once(':').and_then(|(h, m)| {
            let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        });
        parsed.map(TimeOfDay).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a time of day (write \"09:30\")"))
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn of(date: Date) -> Self {
        use chrono::Datelike;
        Self::ALL[date.naive().weekday().num_days_from_monday() as usize]
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// What starts a service's occasions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OccasionKind {
    /// Periodic service, by time since the last one or by projected mileage.
    ServiceDue,
    /// Statutory inspection (HU).
    InspectionDue,
    /// End of the vehicle's warranty.
    WarrantyEnd,
    Birthday,
    /// A brand campaign: a date window and a segment.
    Campaign,
    /// Some days after a vehicle's service visit: a quality-check call.
    AfterVisit,
    /// A customer or vehicle entered a journey stage (the service's
    /// `stage`): once per entry, keyed by the day of the transition.
    Journey,
}

impl OccasionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OccasionKind::ServiceDue => "service_due",
            OccasionKind::InspectionDue => "inspection_due",
            OccasionKind::WarrantyEnd => "warranty_end",
            OccasionKind::Birthday => "birthday",
            OccasionKind::Campaign => "campaign",
            OccasionKind::AfterVisit => "after_visit",
            OccasionKind::Journey => "journey",
        }
    }

    /// Whether the occasion belongs to one vehicle (as opposed to the person).
    pub fn per_vehicle(self) -> bool {
        matches!(
            self,
            OccasionKind::ServiceDue
                | OccasionKind::InspectionDue
                | OccasionKind::WarrantyEnd
                | OccasionKind::AfterVisit
        )
    }
}

/// How a channel's consent works: `opt_in` needs an explicit "yes" on record,
/// `opt_out` is allowed unless a "no" is on record (postal advertising).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentRule {
    OptIn,
    OptOut,
}

// ----- brand.toml -------------------------------------------------------------------

/// `policies/brand.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandPolicy {
    pub brand: BrandInfo,
    pub planning: Planning,
    pub contact: ContactRules,
    #[serde(default)]
    pub calendar: Calendar,
    #[serde(default)]
    pub journey: Journey,
    pub channels: BrandChannels,
    /// Service id -> service. Ids are `a-z0-9_`.
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub email: EmailPolicy,
    #[serde(default)]
    pub throttle: Throttle,
    #[serde(default)]
    pub postage: crate::postage::Postage,
    /// Shares of a service's cost the brand pays, each for a period.
    #[serde(default)]
    pub subsidies: Vec<Subsidy>,
    /// The individualisation slots templates may use (`slots.<name>`) and
    /// dealers fill, by name. When none are declared, dealers' slots are
    /// not checked against declarations (and no proposed template may use one).
    #[serde(default)]
    pub slots: BTreeMap<String, SlotSpec>,
    /// What besides the brand's own material goes through proposal and approval.
    #[serde(default)]
    pub review: Review,
    /// The disclosure rule of the pooled brand report.
    #[serde(default)]
    pub privacy: Privacy,
    /// Click tracking; off unless switched on.
    #[serde(default)]
    pub tracking: Tracking,
    /// How long personal data is kept; nothing is pruned unless set.
    #[serde(default)]
    pub retention: Retention,
}

/// `[retention]`: after how many months what is pruned by the daily
/// retention run (and `touchpoint retention run`). A kind left out is kept
/// for ever (the default). Months are calendar months before today.
/// - `messages_months`: a message that went out (or ended: sent, failed,
///   cancelled, a control record) whose send day is older is
///   pseudonymised as an erasure does it: recipient, address, the
///   transport's answers, history texts and occasion keys go; status,
///   service, days, money and its credited response stay (ledger, results).
/// - `responses_months`: workshop visits and reported responses older are
///   removed. Results and learning count credits, which stay with the
///   messages; but learning also reads raw responses (a control member's
///   baseline, whether a message was answered), so its evidence is the
///   retention window from then on.
/// - `audit_months`: audit lines older are removed from the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub messages_months: Option<u32>,
    pub responses_months: Option<u32>,
    pub audit_months: Option<u32>,
}

impl Retention {
    /// The most months a retention may say: 30 years.
    pub const MAX_MONTHS: u32 = 360;

    /// Each kind with its months (`None`: kept).
    pub fn kinds(&self) -> [(&'static str, Option<u32>); 3] {
        [
            ("messages", self.messages_months),
            ("responses", self.responses_months),
            ("audit", self.audit_months),
        ]
    }

    /// Whether anything is ever pruned.
    pub fn is_set(&self) -> bool {
        self.kinds().iter().any(|(_, m)| m.is_some())
    }
}

fn check_retention(r: &Retention, err: &mut dyn FnMut(String, String)) {
    for (kind, months) in r.kinds() {
        if let Some(m) = months {
            range(
                err,
                &format!("retention.{kind}_months"),
                m,
                1,
                Retention::MAX_MONTHS,
            );
        }
    }
}

/// `[tracking]`: what the brand measures of how emails are read. Off by
/// default (privacy), and there is no open tracking at all (no pixels).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tracking {
    /// The http(s) links of emails go through the daemon's `/c/` redirect
    /// (needs `[http] public_url` in touchpointd.toml), which records a
    /// click on the message. A click is no response.
    pub clicks: bool,
}

/// `[privacy]`: when a cell of the pooled brand report may be shown (M1, M9).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// Dealers that must contribute to a cell, at least 3.
    pub min_dealers: u32,
    /// The largest share of a cell's rows (messages sent and control
    /// members) one dealer may contribute, in (0, 1]; rounded to 0.001.
    pub max_dealer_share: f64,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            min_dealers: 5,
            max_dealer_share: 0.5,
        }
    }
}

impl Privacy {
    pub fn rule(&self) -> crate::report::pool::PoolRule {
        crate::report::pool::PoolRule {
            min_dealers: self.min_dealers,
            max_dealer_permille: (self.max_dealer_share * 1000.0).round() as u32,
        }
    }
}

/// `[review]`: dealer changes that are brand material too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Review {
    /// A dealer's `[slots]` are proposed and approved like a template
    /// (`slots/<tenant-id>`); until a change is approved the approved
    /// values stay in force, whatever the dealer's file says.
    pub dealer_slots: bool,
    /// `brand.toml` itself (service catalogue, offers, campaigns) is
    /// proposed and approved as the material `brand`; until a change of
    /// the file is approved, the approved text stays in force.
    pub brand: bool,
}

/// What a dealer may put into one individualisation slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSpec {
    /// Characters at most (not bytes: umlauts count once).
    pub max_len: u32,
    /// Whether `<` and `>` are allowed. Dealer text is escaped in HTML
    /// either way; this keeps markup out of the text parts and letters too.
    #[serde(default)]
    pub markup: bool,
    /// Whether every dealer must fill it.
    #[serde(default)]
    pub required: bool,
    /// Whether a line break starts a new line (a signature, an offer's
    /// paragraph): rendered as `<br>` in HTML and kept in the letter. A
    /// line break in a slot not declared multi-line is an error.
    #[serde(default)]
    pub multiline: bool,
    /// What the slot is for, for the dealers' file comments and the console.
    #[serde(default)]
    pub description: String,
}

/// How email goes out: where bounces return, how recipients unsubscribe,
/// how often a deferred message is retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailPolicy {
    /// Domain of the per-message return paths (VERP) and unsubscribe
    /// addresses; its MX delivers into the daemon's bounce maildir.
    pub bounce_domain: String,
    /// The brand's one-click unsubscribe page; a per-message token is appended.
    pub unsubscribe_url: String,
    /// First retry after a temporary failure (4xx), minutes; doubles each time.
    pub retry_first_minutes: u32,
    /// A message still deferred this long after its first attempt fails.
    pub retry_max_hours: u32,
    /// Hard bounces above this share of a tenant's sent email raise an alert.
    pub bounce_alert_percent: u32,
}

impl Default for EmailPolicy {
    fn default() -> Self {
        Self {
            bounce_domain: "bounce.touchpoint.invalid".into(),
            unsubscribe_url: "https://touchpoint.invalid/unsubscribe".into(),
            retry_first_minutes: 5,
            retry_max_hours: 48,
            bounce_alert_percent: 5,
        }
    }
}

/// Dispatch throttles, enforced while sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Throttle {
    /// Emails per minute over all tenants; 0 means no limit.
    pub global_per_minute: u32,
    /// Emails per tenant per day; 0 means no limit.
    pub tenant_per_day: u32,
    /// Per destination domain (the part after '@', lower case); `default`
    /// applies to every domain not listed.
    pub domains: BTreeMap<String, DomainThrottle>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            global_per_minute: 0,
            tenant_per_day: 0,
            domains: BTreeMap::from([(
                "default".to_string(),
                DomainThrottle {
                    concurrency: 8,
                    per_minute: 0,
                },
            )]),
        }
    }
}

impl Throttle {
    /// The limits for a destination domain.
    pub fn domain(&self, domain: &str) -> DomainThrottle {
        self.domains
            .get(domain)
            .or_else(|| self.domains.get("default"))
            .copied()
            .unwrap_or(DomainThrottle {
                concurrency: 8,
                per_minute: 0,
            })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainThrottle {
    /// Connections (messages in flight) to the domain at once, at least 1.
    pub concurrency: u32,
    /// Messages per minute to the domain; 0 means no limit.
    #[serde(default)]
    pub per_minute: u32,
}

/// The brand pays `percent` of a service's cost from `from` to `to`
/// (send day, inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subsidy {
    pub service: String,
    pub percent: u32,
    pub from: PolicyDate,
    pub to: PolicyDate,
}

impl BrandPolicy {
    /// The share of a service's cost the brand pays on `day`, in percent.
    pub fn subsidy(&self, service: &str, day: Date) -> u32 {
        self.subsidies
            .iter()
            .filter(|s| s.service == service && s.from.0 <= day && day <= s.to.0)
            .map(|s| s.percent)
            .max()
            .unwrap_or(0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandInfo {
    pub id: String,
    pub name: String,
    /// The legally required imprint (court and register number) that every
    /// email and letter template must contain; checked when a template is
    /// proposed. Empty: the marker "Amtsgericht" is looked for instead.
    #[serde(default)]
    pub imprint: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Planning {
    /// When the daily plan runs: a cron expression with seconds
    /// (`sec min hour day-of-month month day-of-week`), daemon local time.
    pub schedule: String,
    /// Messages whose send date falls within this many days are planned now.
    pub horizon_days: u32,
    /// Occasions of one customer due within this many days of each other
    /// become one message.
    pub bundling_window_days: u32,
    /// Average km per day assumed for a vehicle without enough visits.
    pub default_km_per_day: u32,
    /// A message whose expected value is below this is never planned.
    pub min_value: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRules {
    /// At most this many messages per customer within `period_days`.
    pub max_contacts: u32,
    pub period_days: u32,
    /// At least this many days between two messages to one customer.
    pub min_gap_days: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    /// Weekdays on which nothing is sent.
    pub quiet_weekdays: Vec<Weekday>,
    /// Public holidays on which nothing is sent.
    pub holidays: Vec<PolicyDate>,
}

impl Default for Calendar {
    fn default() -> Self {
        Self {
            quiet_weekdays: vec![Weekday::Sun],
            holidays: Vec::new(),
        }
    }
}

/// `[journey]`: the thresholds of the journey stages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Journey {
    /// A vehicle is `new` for this many months after first registration
    /// (and its holder a `new` customer).
    pub new_months: u32,
    /// A customer without a workshop visit for this many months is `lapsing`.
    pub lapsing_after_months: u32,
    /// ... and for this many months `lapsed` (win-back).
    #[serde(alias = "lost_after_months")]
    pub lapsed_after_months: u32,
    /// A vehicle is `warranty_ending` in the last this many months before
    /// its warranty end.
    pub warranty_ending_months: u32,
    /// A vehicle this many years old is `ageing` (trade-in interest).
    pub ageing_years: u32,
}

impl Default for Journey {
    fn default() -> Self {
        Self {
            new_months: 12,
            lapsing_after_months: 18,
            lapsed_after_months: 36,
            warranty_ending_months: 3,
            ageing_years: 8,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandChannels {
    pub email: ChannelCost,
    pub post: ChannelCost,
    pub phone: ChannelCost,
}

impl BrandChannels {
    pub fn get(&self, c: Channel) -> &ChannelCost {
        match c {
            Channel::Email => &self.email,
            Channel::Post => &self.post,
            Channel::Phone => &self.phone,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelCost {
    /// Estimated cost of one message on this channel.
    pub cost: Money,
    pub consent: ConsentRule,
    /// Phone: cost per call-centre minute; a reported call's minutes are
    /// booked at this rate instead of the estimate.
    #[serde(default)]
    pub per_minute: Option<Money>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub occasion: OccasionKind,
    /// Template in `templates/<name>.toml`.
    pub template: String,
    /// Days before the occasion that the message should arrive.
    pub lead_days: u32,
    /// Expected value of one message (revenue × response rate), for ranking
    /// under a short budget and for the brand's `min_value`.
    pub value: Money,
    /// Channels the service may use, in the brand's order of preference.
    pub channels: Vec<Channel>,
    /// If set, the service is only ever sent on this channel.
    #[serde(default)]
    pub mandatory_channel: Option<Channel>,
    #[serde(default)]
    pub forbidden_channels: Vec<Channel>,
    #[serde(default)]
    pub send_window: SendWindow,
    /// service_due: months between services.
    #[serde(default)]
    pub interval_months: Option<u32>,
    /// service_due: km between services.
    #[serde(default)]
    pub interval_km: Option<u32>,
    /// inspection_due without a stored date: months from first registration to the first inspection.
    #[serde(default)]
    pub first_after_months: Option<u32>,
    /// inspection_due: months between inspections after the first.
    #[serde(default)]
    pub every_months: Option<u32>,
    /// campaign: first and last day of the campaign.
    #[serde(default)]
    pub from: Option<PolicyDate>,
    #[serde(default)]
    pub to: Option<PolicyDate>,
    /// campaign: who is selected.
    #[serde(default)]
    pub segment: Option<Segment>,
    /// after_visit: days after the vehicle's last service.
    #[serde(default)]
    pub after_days: Option<u32>,
    /// journey: the stage whose entry is the occasion.
    #[serde(default)]
    pub stage: Option<AnyStage>,
    /// Days after a message is sent within which a matching response is
    /// credited to it (see `common::report::credits`).
    #[serde(default = "default_attribution_days")]
    pub attribution_days: u32,
    /// Share of eligible recipients (in percent) drawn into the control
    /// group: they get no message, and their responses are the baseline.
    #[serde(default)]
    pub control_percent: u32,
    /// Learn the lead time and the send slot of this service from the
    /// pooled response data (`daemon/src/learning.rs`); off by default.
    #[serde(default)]
    pub learn: bool,
    /// The lead-time grid learning chooses from ([`Service::lead_grid`]):
    /// by default `lead_days / 2` to `lead_days * 2` in steps of 7 days,
    /// always through `lead_days`.
    #[serde(default)]
    pub lead_days_min: Option<u32>,
    #[serde(default)]
    pub lead_days_max: Option<u32>,
    #[serde(default)]
    pub lead_days_step: Option<u32>,
    /// Share of a learning service's messages (percent, 0 to
    /// [`MAX_EXPLORE_PERCENT`]) that explore another lead or slot.
    #[serde(default = "default_explore_percent")]
    pub explore_percent: u32,
    /// Days after a send within which learning counts a response (and the
    /// control group's baseline is counted over the same days): by default
    /// the whole attribution window. A shorter window lets learning use a
    /// message once this many days have passed instead of the whole
    /// attribution window, at the price of missing later responses; a
    /// brand sets it from how soon responses come ([`Service::learn_window`]).
    #[serde(default)]
    pub learn_window_days: Option<u32>,
}

/// The largest share of messages learning may explore with.
pub const MAX_EXPLORE_PERCENT: u32 = 50;
/// The most lead times one grid may hold.
pub const MAX_LEAD_ARMS: usize = 30;

fn default_explore_percent() -> u32 {
    10
}

impl Service {
    /// The days after a send within which learning counts a response:
    /// `learn_window_days`, within the attribution window, by default the
    /// attribution window itself.
    pub fn learn_window(&self) -> u32 {
        self.learn_window_days
            .unwrap_or(self.attribution_days)
            .min(self.attribution_days)
    }

    /// The lead-time grid's bounds and step: the policy's, or derived from
    /// `lead_days` (half to double, a week apart).
    pub fn lead_bounds(&self) -> (u32, u32, u32) {
        let min = self.lead_days_min.unwrap_or((self.lead_days / 2).max(1));
        let max = self.lead_days_max.unwrap_or((self.lead_days * 2).min(365));
        (min, max, self.lead_days_step.unwrap_or(7))
    }

    /// The lead times (days) learning may choose, ascending: every value
    /// in `lead_days_min..=lead_days_max` that is a whole number of steps
    /// from the policy's `lead_days`, so the policy's value is always one.
    pub fn lead_grid(&self) -> Vec<u32> {
        let (min, max, step) = self.lead_bounds();
        let step = step.max(1);
        let mut below: Vec<u32> = (1..)
            .map(|k: u32| self.lead_days.checked_sub(k * step))
            .take_while(|v| v.is_some_and(|v| v >= min && v >= 1))
            .flatten()
            .collect();
        below.reverse();
        below.push(self.lead_days);
        below.extend(
            (1..)
                .map(|k: u32| self.lead_days + k * step)
                .take_while(|&v| v <= max),
        );
        below
    }
}

/// The attribution window when a service sets none.
pub const DEFAULT_ATTRIBUTION_DAYS: u32 = 60;
/// The largest control group a service may ask for: a larger one would
/// withhold the message from more customers than it reaches.
pub const MAX_CONTROL_PERCENT: u32 = 50;

fn default_attribution_days() -> u32 {
    DEFAULT_ATTRIBUTION_DAYS
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendWindow {
    pub weekdays: Vec<Weekday>,
    pub from: TimeOfDay,
    pub to: TimeOfDay,
}

impl Default for SendWindow {
    fn default() -> Self {
        Self {
            weekdays: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            from: TimeOfDay(9 * 60),
            to: TimeOfDay(17 * 60),
        }
    }
}

/// A campaign's selection: every key present must match (AND); list values
/// match any of their entries (OR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Segment {
    /// Vehicle model names, case-insensitive.
    pub models: Vec<String>,
    /// Whole years since first registration.
    pub vehicle_age_years: Option<Range>,
    /// Postcode prefixes ("8", "80", "809").
    pub postcode_prefixes: Vec<String>,
    /// Days since the last visit of any of the customer's vehicles (never = infinitely long).
    pub days_since_last_visit: Option<Range>,
    /// The customer must have consent on all of these channels.
    pub consent: Vec<Channel>,
    /// The customer's journey stage is one of these.
    pub journey_stages: Vec<JourneyStage>,
    /// One of the customer's vehicles is in one of these stages.
    pub vehicle_stages: Vec<VehicleStage>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<u32>,
}

impl Range {
    pub fn contains(&self, v: u32) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

// ----- dealers/<tenant>.toml ---------------------------------------------------------

/// `policies/dealers/<tenant-id>.toml`: one dealer's policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantPolicy {
    pub tenant: TenantInfo,
    #[serde(default)]
    pub channels: TenantChannels,
    #[serde(default)]
    pub sender: Sender,
    /// Service id -> the dealer's participation. A service not listed is off.
    #[serde(default)]
    pub services: BTreeMap<String, TenantService>,
    /// Individualisation slot contents, by slot name.
    #[serde(default)]
    pub slots: BTreeMap<String, String>,
    #[serde(default)]
    pub suppress: Suppress,
    #[serde(default)]
    pub import: TenantImport,
    /// What of this dealer's own figures the brand's report may show.
    #[serde(default)]
    pub share: Share,
}

/// `[share]`: report fields of this dealer's own, non-pooled figures the
/// brand may see by name. Nothing is shared unless listed (M1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Share {
    pub fields: Vec<crate::report::answer::ShareField>,
}

/// `[import]`: how this dealer's exports are read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TenantImport {
    /// Header (as written in the export, case-insensitive) -> canonical field.
    /// Consulted before the built-in German and English defaults.
    pub columns: BTreeMap<String, ImportField>,
    /// Force a delimiter (";", ",", "\t", "|") instead of detecting it.
    pub delimiter: Option<String>,
    /// Force an encoding ("utf-8", "windows-1252") instead of detecting it.
    pub encoding: Option<String>,
    /// Day-first is the German default; set "ymd" or "dmy" to force.
    pub date_order: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInfo {
    pub id: TenantId,
    pub name: String,
    #[serde(default)]
    pub city: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantChannels {
    /// Channels this dealer uses at all.
    pub enabled: Vec<Channel>,
    /// Messages sent per day at most, all channels together.
    pub daily_capacity: u32,
}

impl Default for TenantChannels {
    fn default() -> Self {
        Self {
            enabled: vec![Channel::Email, Channel::Post],
            daily_capacity: 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Sender {
    pub name: String,
    pub email: String,
    pub reply_to: String,
    pub phone: String,
    pub street: String,
    pub postcode: String,
    pub city: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantService {
    #[serde(default = "yes")]
    pub opt_in: bool,
    /// Budget per calendar month for this service.
    pub monthly_budget: Money,
}

fn yes() -> bool {
    true
}

/// Never contact these, whatever their consent says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Suppress {
    pub customers: Vec<String>,
    pub emails: Vec<String>,
}

/// A fingerprint (of the policy set, of a template version) as people
/// see it, in the console and in a message's history: its first 12 hex
/// digits, enough to tell versions apart.
pub fn short_fingerprint(v: u64) -> String {
    let mut s = format!("{v:016x}");
    s.truncate(12);
    s
}

// ----- reading a policy directory ----------------------------------------------------

/// A policy directory as [`read_files`] sees it. The daemon and `touchpoint
/// policy check` each implement it over the file system (a few lines); what
/// counts as a policy file and how a read failure is reported lives here
/// once, so both read the same files the same way.
pub trait PolicySource {
    /// Names of the regular files directly in the folder `rel` (`"dealers"`,
    /// `"templates"`), in any order. A folder that does not exist is an
    /// error of kind `NotFound`.
    fn files_in(&self, rel: &str) -> std::io::Result<Vec<String>>;
    /// The bytes of the file `rel` (`"brand.toml"`, `"dealers/d001.toml"`).
    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>>;
}

/// Reads `brand.toml`, `dealers/*.toml` and `templates/*.toml` into
/// `relative path -> text` for [`PolicySet::validate`]. Editors' swap and
/// backup files (`.d001.toml.swp`, `d001.toml~`) are not policy files. A
/// missing `brand.toml` is left for `validate` to report; a missing
/// `templates/` folder is one without templates. `shown` prefixes file names
/// in errors, as in `validate`.
pub fn read_files(
    src: &impl PolicySource,
    shown: &str,
) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut wanted = vec!["brand.toml".to_string()];
    for folder in ["dealers", "templates"] {
        let mut names = match src.files_in(folder) {
            Ok(names) => names,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && folder == "templates" => continue,
            Err(e) => {
                let message = if e.kind() == std::io::ErrorKind::NotFound {
                    "missing: every policy directory has a dealers/ folder with one file per dealer"
                        .into()
                } else {
                    format!("cannot read the folder: {e}")
                };
                errors.push(ConfigError {
                    file: shown_path(shown, &format!("{folder}/")),
                    line: None,
                    key: String::new(),
                    message,
                });
                continue;
            }
        };
        names.sort();
        wanted.extend(
            names
                .into_iter()
                .filter(|n| n.ends_with(".toml") && !n.starts_with('.'))
                .map(|n| format!("{folder}/{n}")),
        );
    }
    let mut files = BTreeMap::new();
    for rel in wanted {
        let bytes = match src.read(&rel) {
            Ok(bytes) => bytes,
            Err(e) if rel == "brand.toml" && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(ConfigError {
                    file: shown_path(shown, &rel),
                    line: None,
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => {
                files.insert(rel, text);
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
                errors.push(ConfigError {
                    file: shown_path(shown, &rel),
                    line: Some(line),
                    key: String::new(),
                    message: "not UTF-8 text (saved as Windows-1252?); save the file as UTF-8"
                        .into(),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// `rel` as the user knows it: under the directory they named, if any.
pub(crate) fn shown_path(shown: &str, rel: &str) -> String {
    if shown.is_empty() {
        rel.to_string()
    } else {
        format!("{}/{rel}", shown.trim_end_matches('/'))
    }
}

// ----- the validated set ------------------------------------------------------------

/// A complete, cross-checked set of policies.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySet {
    pub brand: BrandPolicy,
    pub tenants: BTreeMap<TenantId, TenantPolicy>,
    /// The brand material under `templates/`, parsed and syntax-checked, by name.
    pub templates: BTreeMap<String, Template>,
    /// Files read, relative to the policy directory, sorted.
    pub files: Vec<String>,
    /// Fingerprint of every file's path and content, so a plan can tell
    /// whether the policy changed since it last ran.
    pub fingerprint: u64,
}

impl PolicySet {
    pub fn tenant(&self, id: &TenantId) -> Option<&TenantPolicy> {
        self.tenants.get(id)
    }

    /// Validates a whole policy directory given as `relative path -> text`.
    /// `shown` prefixes file names in errors (the directory as the user named it).
    pub fn validate(
        files: &BTreeMap<String, String>,
        shown: &str,
    ) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let name = |rel: &str| shown_path(shown, rel);
        let templates: BTreeSet<String> = files
            .keys()
            .filter_map(|k| k.strip_prefix("templates/")?.strip_suffix(".toml"))
            .map(str::to_string)
            .collect();

        let brand = match files.get("brand.toml") {
            None => {
                errors.push(ConfigError {
                    file: name("brand.toml"),
                    line: None,
                    key: String::new(),
                    message: "missing: every policy directory has a brand.toml".into(),
                });
                None
            }
            Some(text) => match parse_toml::<BrandPolicy>(&name("brand.toml"), text) {
                Ok(b) => {
                    let before = errors.len();
                    check_brand(&b, &name("brand.toml"), text, &templates, &mut errors);
                    (errors.len() == before).then_some(b)
                }
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };

        let mut tenants = BTreeMap::new();
        for (rel, text) in files {
            let Some(stem) = rel
                .strip_prefix("dealers/")
                .and_then(|r| r.strip_suffix(".toml"))
            else {
                continue;
            };
            let file = name(rel);
            let policy = match parse_toml::<TenantPolicy>(&file, text) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let before = errors.len();
            if policy.tenant.id.as_str() != stem {
                errors.push(invalid(
                    &file,
                    text,
                    "tenant.id",
                    format!(
                        "{:?} does not match the file name; a dealer's file must be named <tenant-id>.toml ({}.toml)",
                        policy.tenant.id.as_str(),
                        policy.tenant.id
                    ),
                ));
            }
            check_tenant(&policy, brand.as_ref(), &file, text, &mut errors);
            if errors.len() == before {
                tenants.insert(policy.tenant.id.clone(), policy);
            }
        }

        // `templates` (the file names) answers whether a service's template
        // exists; a file that is there but broken is its own error, once.
        let mut parsed = BTreeMap::new();
        for t in &templates {
            let rel = format!("templates/{t}.toml");
            let Some(text) = files.get(&rel) else {
                continue;
            };
            match Template::parse(t, &name(&rel), text) {
                Ok(template) => {
                    parsed.insert(t.clone(), template);
                }
                Err(e) => errors.extend(e),
            }
        }

        match brand {
            Some(brand) if errors.is_empty() => Ok(PolicySet {
                brand,
                tenants,
                templates: parsed,
                files: files.keys().cloned().collect(),
                fingerprint: fingerprint(files),
            }),
            _ => Err(errors),
        }
    }
}

/// FNV-1a over paths and contents: stable across runs and platforms.
fn fingerprint(files: &BTreeMap<String, String>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in files {
        for b in k.bytes().chain([0]).chain(v.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A service's lead-time grid: bounds around the policy's `lead_days`, a
/// step of at least a day, at most [`MAX_LEAD_ARMS`] values.
fn check_lead_grid(s: &Service, k: &dyn Fn(&str) -> String, err: &mut dyn FnMut(String, String)) {
    if s.lead_days == 0 {
        // Its own error (lead_days: between 1 and 365); no grid around it.
        return;
    }
    let (min, max, step) = s.lead_bounds();
    if let Some(v) = s.lead_days_min {
        range(err, &k("lead_days_min"), v, 1, 365);
    }
    if let Some(v) = s.lead_days_max {
        range(err, &k("lead_days_max"), v, 1, 365);
    }
    if let Some(v) = s.lead_days_step {
        range(err, &k("lead_days_step"), v, 1, 90);
    }
    if min > s.lead_days {
        err(
            k("lead_days_min"),
            format!(
                "must not exceed lead_days ({}), got {min}: the policy's lead time is on the grid",
                s.lead_days
            ),
        );
    } else if max < s.lead_days {
        err(
            k("lead_days_max"),
            format!(
                "must not be below lead_days ({}), got {max}: the policy's lead time is on the grid",
                s.lead_days
            ),
        );
    } else if step >= 1 && s.lead_grid().len() > MAX_LEAD_ARMS {
        err(
            k("lead_days_step"),
            format!(
                "{step} makes {} lead times from {min} to {max}; at most {MAX_LEAD_ARMS} (take a larger step)",
                s.lead_grid().len()
            ),
        );
    }
}

/// `[privacy]`.
fn check_privacy(p: &Privacy, err: &mut dyn FnMut(String, String)) {
    // Fewer than three: a dealer in a cell of two can subtract itself and
    // read the other's figures.
    range(err, "privacy.min_dealers", p.min_dealers, 3, 10_000);
    let share = p.max_dealer_share;
    if !(share > 0.0 && share <= 1.0) {
        err(
            "privacy.max_dealer_share".into(),
            format!("must be more than 0 and at most 1, got {share}"),
        );
    } else if p.min_dealers >= 3 && share * f64::from(p.min_dealers) < 1.0 {
        err(
            "privacy.max_dealer_share".into(),
            format!(
                "{share} is below 1 / min_dealers ({}): even {} equal dealers would dominate every cell, and every cell would be suppressed",
                p.min_dealers, p.min_dealers
            ),
        );
    }
}

/// `[email]`, `[throttle]` and `[[subsidies]]`.
fn check_dispatch(b: &BrandPolicy, err: &mut dyn FnMut(String, String)) {
    let e = &b.email;
    let domain_ok = |d: &str| {
        !d.is_empty()
            && d.contains('.')
            && d.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            })
    };
    if !domain_ok(&e.bounce_domain) {
        err(
            "email.bounce_domain".into(),
            format!(
                "{:?} is not a domain name like \"bounce.example.com\"",
                e.bounce_domain
            ),
        );
    }
    if !e.unsubscribe_url.starts_with("https://") || e.unsubscribe_url.len() <= "https://".len() {
        err(
            "email.unsubscribe_url".into(),
            format!(
                "must be an https:// address (RFC 8058 one-click), got {:?}",
                e.unsubscribe_url
            ),
        );
    }
    range(
        err,
        "email.retry_first_minutes",
        e.retry_first_minutes,
        1,
        24 * 60,
    );
    range(err, "email.retry_max_hours", e.retry_max_hours, 1, 14 * 24);
    range(
        err,
        "email.bounce_alert_percent",
        e.bounce_alert_percent,
        0,
        100,
    );
    for (d, t) in &b.throttle.domains {
        if d != "default" && !domain_ok(d) {
            err(
                format!("throttle.domains.{d}"),
                "is neither \"default\" nor a domain name".into(),
            );
        }
        range(
            err,
            &format!("throttle.domains.{d}.concurrency"),
            t.concurrency,
            1,
            1000,
        );
    }
    for (key, message) in b.postage.check() {
        err(key, message);
    }
    for (i, s) in b.subsidies.iter().enumerate() {
        let k = |leaf: &str| format!("subsidies[{i}].{leaf}");
        if !b.services.contains_key(&s.service) {
            err(
                k("service"),
                format!(
                    "no service {:?} (have: {})",
                    s.service,
                    list(b.services.keys())
                ),
            );
        }
        range(err, &k("percent"), s.percent, 1, 100);
        if s.to.0 < s.from.0 {
            err(
                k("to"),
                format!("is before from ({}), got {}", s.from.0, s.to.0),
            );
        }
    }
}

fn check_brand(
    b: &BrandPolicy,
    file: &str,
    text: &str,
    templates: &BTreeSet<String>,
    errors: &mut Vec<ConfigError>,
) {
    let mut err = |key: String, msg: String| errors.push(invalid(file, text, &key, msg));
    check_dispatch(b, &mut err);
    check_privacy(&b.privacy, &mut err);
    check_retention(&b.retention, &mut err);
    for (slot, spec) in &b.slots {
        if slot.is_empty()
            || !slot
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            err(
                format!("slots.{slot}"),
                "a slot name is lower case a-z, 0-9 and '_'".into(),
            );
        }
        range(
            &mut err,
            &format!("slots.{slot}.max_len"),
            spec.max_len,
            1,
            2000,
        );
    }
    if let Err(e) = b.planning.schedule.parse::<cron::Schedule>() {
        // The parser's message spans lines (the expression, a caret, the
        // reason); the reason is the last.
        let text = e.to_string();
        let reason = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.chars().all(|c| c == '^'))
            .unwrap_or_default()
            .to_string();
        err(
            "planning.schedule".into(),
            format!(
                "{:?} is not a cron expression (write sec min hour day-of-month month day-of-week, like \"0 30 5 * * Mon-Sat\"): {reason}",
                b.planning.schedule
            ),
        );
    }
    range(
        &mut err,
        "planning.horizon_days",
        b.planning.horizon_days,
        1,
        365,
    );
    range(
        &mut err,
        "planning.bundling_window_days",
        b.planning.bundling_window_days,
        0,
        90,
    );
    range(
        &mut err,
        "planning.default_km_per_day",
        b.planning.default_km_per_day,
        1,
        1000,
    );
    range(
        &mut err,
        "contact.max_contacts",
        b.contact.max_contacts,
        1,
        100,
    );
    range(
        &mut err,
        "contact.period_days",
        b.contact.period_days,
        1,
        366,
    );
    if b.contact.min_gap_days > b.contact.period_days {
        err(
            "contact.min_gap_days".into(),
            format!(
                "must not exceed contact.period_days ({}), got {}",
                b.contact.period_days, b.contact.min_gap_days
            ),
        );
    }
    if b.calendar.quiet_weekdays.len() >= 7 {
        err(
            "calendar.quiet_weekdays".into(),
            "every day of the week is quiet: nothing could ever be sent".into(),
        );
    }
    let j = &b.journey;
    range(&mut err, "journey.new_months", j.new_months, 1, 120);
    range(
        &mut err,
        "journey.lapsing_after_months",
        j.lapsing_after_months,
        1,
        240,
    );
    range(
        &mut err,
        "journey.warranty_ending_months",
        j.warranty_ending_months,
        1,
        24,
    );
    range(&mut err, "journey.ageing_years", j.ageing_years, 1, 40);
    if j.lapsing_after_months >= j.lapsed_after_months {
        err(
            "journey.lapsed_after_months".into(),
            format!(
                "must be greater than journey.lapsing_after_months ({}), got {}",
                j.lapsing_after_months, j.lapsed_after_months
            ),
        );
    }
    if j.ageing_years.saturating_mul(12) <= j.new_months {
        err(
            "journey.ageing_years".into(),
            format!(
                "must be past journey.new_months ({} months), got {} year(s)",
                j.new_months, j.ageing_years
            ),
        );
    }
    if b.channels.email.consent != ConsentRule::OptIn {
        err(
            "channels.email.consent".into(),
            "must be \"opt_in\": email needs the customer's explicit consent".into(),
        );
    }
    if b.services.is_empty() {
        err("services".into(), "the brand offers no service".into());
    }
    for (id, s) in &b.services {
        let k = |leaf: &str| format!("services.{id}.{leaf}");
        if id.is_empty()
            || !id
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            err(
                format!("services.{id}"),
                "a service id is lower case a-z, 0-9 and '_'".into(),
            );
        }
        range(&mut err, &k("lead_days"), s.lead_days, 1, 365);
        range(&mut err, &k("attribution_days"), s.attribution_days, 1, 365);
        range(
            &mut err,
            &k("control_percent"),
            s.control_percent,
            0,
            MAX_CONTROL_PERCENT,
        );
        range(
            &mut err,
            &k("explore_percent"),
            s.explore_percent,
            0,
            MAX_EXPLORE_PERCENT,
        );
        if let Some(w) = s.learn_window_days {
            range(
                &mut err,
                &k("learn_window_days"),
                w,
                1,
                s.attribution_days.max(1),
            );
        }
        check_lead_grid(s, &k, &mut err);
        if !templates.contains(&s.template) {
            err(
                k("template"),
                format!(
                    "no template {:?} (expected templates/{}.toml; have: {})",
                    s.template,
                    s.template,
                    list(templates.iter())
                ),
            );
        }
        if s.channels.is_empty() {
            err(k("channels"), "lists no channel".into());
        }
        if let Some(m) = s.mandatory_channel {
            if !s.channels.contains(&m) {
                err(
                    k("mandatory_channel"),
                    format!("{m} is not among the service's channels"),
                );
            }
            if s.forbidden_channels.contains(&m) {
                err(
                    k("mandatory_channel"),
                    format!("{m} is both mandatory and forbidden"),
                );
            }
        }
        if s.channels.iter().all(|c| s.forbidden_channels.contains(c)) && !s.channels.is_empty() {
            err(
                k("forbidden_channels"),
                "forbids every channel of the service".into(),
            );
        }
        let w = &s.send_window;
        if w.weekdays.is_empty() {
            err(k("send_window.weekdays"), "lists no day".into());
        } else if w
            .weekdays
            .iter()
            .all(|d| b.calendar.quiet_weekdays.contains(d))
        {
            err(
                k("send_window.weekdays"),
                "every day listed is a quiet day".into(),
            );
        }
        if w.from >= w.to {
            err(
                k("send_window.to"),
                format!(
                    "must be later than send_window.from ({}), got {}",
                    w.from, w.to
                ),
            );
        }
        let need = |err: &mut dyn FnMut(String, String), key: &str, present: bool| {
            if !present {
                err(
                    k(key),
                    format!("is required for occasion {:?}", s.occasion.as_str()),
                );
            }
        };
        let forbid = |err: &mut dyn FnMut(String, String), key: &str, present: bool| {
            if present {
                err(
                    k(key),
                    format!("does not apply to occasion {:?}", s.occasion.as_str()),
                );
            }
        };
        let is = |kind| s.occasion == kind;
        let sd = is(OccasionKind::ServiceDue);
        let hu = is(OccasionKind::InspectionDue);
        let camp = is(OccasionKind::Campaign);
        if is(OccasionKind::Journey) {
            need(&mut err, "stage", s.stage.is_some());
        } else {
            forbid(&mut err, "stage", s.stage.is_some());
        }
        if is(OccasionKind::AfterVisit) {
            need(&mut err, "after_days", s.after_days.is_some());
            if let Some(d) = s.after_days {
                range(&mut err, &k("after_days"), d, 1, 365);
            }
        } else {
            forbid(&mut err, "after_days", s.after_days.is_some());
        }
        if sd {
            need(&mut err, "interval_months", s.interval_months.is_some());
            if let Some(m) = s.interval_months {
                range(&mut err, &k("interval_months"), m, 1, 120);
            }
            if let Some(km) = s.interval_km {
                range(&mut err, &k("interval_km"), km, 1000, 200_000);
            }
        } else {
            forbid(&mut err, "interval_months", s.interval_months.is_some());
            forbid(&mut err, "interval_km", s.interval_km.is_some());
        }
        if hu {
            need(
                &mut err,
                "first_after_months",
                s.first_after_months.is_some(),
            );
            need(&mut err, "every_months", s.every_months.is_some());
            for (key, v) in [
                ("first_after_months", s.first_after_months),
                ("every_months", s.every_months),
            ] {
                if let Some(v) = v {
                    range(&mut err, &k(key), v, 1, 120);
                }
            }
        } else {
            forbid(
                &mut err,
                "first_after_months",
                s.first_after_months.is_some(),
            );
            forbid(&mut err, "every_months", s.every_months.is_some());
        }
        if camp {
            need(&mut err, "from", s.from.is_some());
            need(&mut err, "to", s.to.is_some());
            need(&mut err, "segment", s.segment.is_some());
            if let (Some(f), Some(t)) = (s.from, s.to) {
                if t < f {
                    err(k("to"), format!("is before from ({}), got {}", f.0, t.0));
                }
            }
            if let Some(seg) = &s.segment {
                for (key, r) in [
                    ("vehicle_age_years", seg.vehicle_age_years),
                    ("days_since_last_visit", seg.days_since_last_visit),
                ] {
                    if let Some(Range {
                        min: Some(lo),
                        max: Some(hi),
                    }) = r
                    {
                        if lo > hi {
                            err(
                                format!("services.{id}.segment.{key}.max"),
                                format!("must not be below min ({lo}), got {hi}"),
                            );
                        }
                    }
                }
                for (i, p) in seg.postcode_prefixes.iter().enumerate() {
                    if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                        err(
                            format!("services.{id}.segment.postcode_prefixes"),
                            format!("entry {} ({p:?}) is not 1 to 5 digits", i + 1),
                        );
                    }
                }
            }
        } else {
            forbid(&mut err, "from", s.from.is_some());
            forbid(&mut err, "to", s.to.is_some());
            forbid(&mut err, "segment", s.segment.is_some());
        }
    }
}

/// Checks a dealer's file on its own and, given a valid brand, against it
/// (a brand with errors would only add confusing follow-up errors).
fn check_tenant(
    t: &TenantPolicy,
    brand: Option<&BrandPolicy>,
    file: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
) {
    let mut err = |key: String, msg: String| errors.push(invalid(file, text, &key, msg));
    if t.channels.enabled.is_empty() {
        err("channels.enabled".into(), "lists no channel".into());
    }
    range(
        &mut err,
        "channels.daily_capacity",
        t.channels.daily_capacity,
        1,
        1_000_000,
    );
    if !t.sender.email.is_empty() && !t.sender.email.contains('@') {
        err(
            "sender.email".into(),
            format!("{:?} is not an address", t.sender.email),
        );
    }
    for (slot, value) in &t.slots {
        if value.chars().count() > 2000 {
            err(
                format!("slots.{slot}"),
                "is longer than 2000 characters".into(),
            );
        }
    }
    let Some(brand) = brand else {
        return;
    };
    check_slots(&t.slots, brand, &mut err);
    for (id, s) in &t.services {
        let Some(service) = brand.services.get(id) else {
            err(
                format!("services.{id}"),
                format!(
                    "the brand offers no service {id:?} (brand.toml has: {})",
                    list(brand.services.keys())
                ),
            );
            continue;
        };
        if s.opt_in
            && !service
                .channels
                .iter()
                .any(|c| t.channels.enabled.contains(c))
        {
            err(
                format!("services.{id}.opt_in"),
                format!(
                    "the service uses {} and the dealer enables none of them (channels.enabled)",
                    list(service.channels.iter())
                ),
            );
        }
    }
}

/// A dealer's `[slots]` against the brand's declarations, each mistake as
/// (`slots.<name>`, message). A brand that declares none leaves them
/// unchecked (beyond the 2000 characters, which `check_tenant` checks).
pub fn check_slots(
    slots: &BTreeMap<String, String>,
    brand: &BrandPolicy,
    err: &mut dyn FnMut(String, String),
) {
    if brand.slots.is_empty() {
        return;
    }
    for (slot, value) in slots {
        let Some(spec) = brand.slots.get(slot) else {
            err(
                format!("slots.{slot}"),
                format!(
                    "the brand declares no slot {slot:?} (brand.toml [slots] has: {})",
                    list(brand.slots.keys())
                ),
            );
            continue;
        };
        let len = value.chars().count();
        if len > spec.max_len as usize {
            err(
                format!("slots.{slot}"),
                format!(
                    "is {len} characters long, the brand allows {}",
                    spec.max_len
                ),
            );
        }
        if !spec.multiline && value.contains(['\n', '\r']) {
            err(
                format!("slots.{slot}"),
                format!(
                    "must be one line: the brand declares {slot:?} without `multiline = true`, so a line break would be lost in the email"
                ),
            );
        }
        if !spec.markup && value.contains(['<', '>']) {
            err(
                format!("slots.{slot}"),
                "must not contain markup (< or >): the brand allows plain text only".into(),
            );
        }
    }
    for (slot, spec) in &brand.slots {
        if spec.required && slots.get(slot).is_none_or(|v| v.trim().is_empty()) {
            err(
                format!("slots.{slot}"),
                "is required by the brand and missing or empty".into(),
            );
        }
    }
}

fn range(err: &mut dyn FnMut(String, String), key: &str, v: u32, lo: u32, hi: u32) {
    if v < lo || v > hi {
        err(
            key.to_string(),
            format!("must be between {lo} and {hi}, got {v}"),
        );
    }
}

fn list<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = items.map(|i| i.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The repository's `policies/`, validated: what tests of pure code that
/// renders or plans with the shipped policies start from.
#[cfg(test)]
pub(crate) fn shipped() -> PolicySet {
    struct Dir(std::path::PathBuf);
    impl PolicySource for Dir {
        fn files_in(&self, rel: &str) -> std::io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(self.0.join(rel))? {
                if let Some(name) = entry?.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
            Ok(names)
        }
        fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
            std::fs::read(self.0.join(rel))
        }
    }
    let dir = Dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies"));
    read_files(&dir, "policies")
        .and_then(|files| PolicySet::validate(&files, "policies"))
        .unwrap_or_else(|e| panic!("{e:?}"))
}

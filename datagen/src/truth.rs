//! The hidden response model of a simulated season: the ground truth the
//! learner does not see. No I/O, deterministic by seed.
//!
//! Every vehicle due for a service has an **organic** visit of its own
//! (customers come anyway around the due date, or never), whatever is sent.
//! A message adds a chance that the customer comes because of it, a few
//! days after it arrived. That chance is the product of
//!
//! - a **lead curve** per service: a peak at a lead time drawn per seed on
//!   the brand's grid (never the policy's lead), falling off as a Gaussian
//!   (standard deviation 1.25 grid steps) to a floor of a quarter of the
//!   peak;
//! - **slot effects** per channel: a weekday factor, and for email an hour
//!   factor peaking at an hour drawn per seed (a letter's hour means
//!   nothing: it goes in the day's batch);
//! - a **dealer factor** (heterogeneity: 0.6 to 1.4, drawn per dealer);
//! - a **recipient factor** (noise around 1: 0.5 to 1.5).
//!
//! What a message is worth is its *incremental* response: a visit within
//! the attribution window that would not have happened without it. The
//! organic visits in the window are what a control group shows, so a long
//! lead, whose window holds fewer of them, adds more than the raw response
//! curve says. [`Truth::expected_incremental`] computes it exactly; the
//! [`Truth::oracle`] is its maximum over the grid and the send window.

use chrono::Datelike;
use touchpoint_common::domain::Channel;
use touchpoint_common::Date;

use crate::gen::{mix, rng};

/// Days after a send within which a visit is credited to it (the brand's
/// default `attribution_days`).
pub const WINDOW_DAYS: i32 = 60;
/// A response comes this many days after the send, at most (a letter
/// arrives, the customer books, comes).
pub const RESPONSE_DELAY_MAX: i32 = 14;
/// Organic visits fall uniformly from this many days before the due date…
pub const ORGANIC_BEFORE: i32 = 28;
/// …to this many after it.
pub const ORGANIC_AFTER: i32 = 56;

/// Share of the peak response a reminder at the worst lead still gets.
pub const FLOOR: f64 = 0.25;

const SALT_SERVICE: u64 = 0x7472_7574;
const SALT_SLOT: u64 = 0x736c_6f74;
const SALT_DEALER: u64 = 0x6465_616c;
const SALT_ORGANIC: u64 = 0x6f72_6761;
const SALT_RESPOND: u64 = 0x7265_7370_6f6e;

/// The lead times the brand lets a learner choose from, in days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeadGrid {
    pub min: u32,
    pub max: u32,
    pub step: u32,
}

impl LeadGrid {
    /// Every lead on the grid, shortest first.
    pub fn leads(self) -> impl Iterator<Item = u32> {
        (self.min..=self.max).step_by(self.step.max(1) as usize)
    }

    /// How many grid steps apart two leads are (rounded to the nearer step).
    pub fn steps_between(self, a: u32, b: u32) -> u32 {
        (a.abs_diff(b) + self.step.max(1) / 2) / self.step.max(1)
    }
}

/// What the simulation tells the model about a service: its id, the
/// policy's lead (which the drawn optimum never is), the grid and the send
/// window (weekdays Mon = 0, hours `from..to`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub id: String,
    pub policy_lead: u32,
    pub grid: LeadGrid,
    pub weekdays: Vec<u8>,
    pub hours: (u8, u8),
    /// Chance of an organic visit around the due date, percent.
    pub organic_percent: u32,
}

/// A service's hidden truth.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceTruth {
    pub spec: ServiceSpec,
    /// Where the response curve peaks (days of lead).
    pub peak_lead: u32,
    /// The response chance at the peak, best slot, dealer and recipient
    /// factor 1, by email.
    pub peak: f64,
    /// Standard deviation of the lead curve, days.
    pub width: f64,
}

/// Weekday and hour factors of one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotEffects {
    /// Mon = 0 … Sun = 6.
    pub weekday: [f64; 7],
    pub hour: [f64; 24],
    /// The channel's factor on every response chance.
    pub base: f64,
}

/// A send time: weekday (Mon = 0) and hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub weekday: u8,
    pub hour: u8,
}

impl Slot {
    /// The slot of a send day and minute after midnight.
    pub fn of(day: Date, minute: u16) -> Self {
        Self {
            weekday: day.naive().weekday().num_days_from_monday() as u8,
            hour: (minute / 60).min(23) as u8,
        }
    }

    /// `Tue 09:00`.
    pub fn label(self) -> String {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        format!(
            "{} {:02}:00",
            DAYS[usize::from(self.weekday % 7)],
            self.hour
        )
    }
}

/// One message as the model sees it: what, how, when, from whom, to whom.
#[derive(Clone, Copy, Debug)]
pub struct Send<'a> {
    pub service: &'a str,
    pub channel: Channel,
    /// The occasion's due date.
    pub due: Date,
    pub send_on: Date,
    /// Minutes after midnight.
    pub send_at: u16,
    pub dealer: &'a str,
    /// Tells recipients (vehicles) apart; the same for their organic visit.
    pub key: u64,
}

impl Send<'_> {
    pub fn lead(&self) -> i32 {
        self.due.days() - self.send_on.days()
    }
}

/// The best arm of a service and channel, and what it is worth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Oracle {
    pub lead: u32,
    pub slot: Slot,
    /// Expected incremental responses per message (dealer factor 1).
    pub incremental: f64,
}

/// The hidden model of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    seed: u64,
    pub services: Vec<ServiceTruth>,
    pub email: SlotEffects,
    pub post: SlotEffects,
}

impl Truth {
    /// Draws the truth of `seed` for `services`.
    pub fn new(seed: u64, services: &[ServiceSpec]) -> Self {
        let email = slot_effects(seed, 1, true, 1.0);
        let post = slot_effects(seed, 2, false, 1.1);
        let mut truth = Self {
            seed,
            services: Vec::new(),
            email,
            post,
        };
        for (i, spec) in services.iter().enumerate() {
            let mut r = rng(seed, i as u64, SALT_SERVICE);
            let candidates: Vec<u32> = spec
                .grid
                .leads()
                .filter(|&l| l != spec.policy_lead)
                .collect();
            let peak = 0.10 + r.f64() * 0.08;
            let width = 1.25 * f64::from(spec.grid.step.max(1));
            // Draw a peak until the oracle (which weighs the organic visits
            // too) is not the policy's lead; the grid's far end otherwise.
            let mut chosen = None;
            for _ in 0..16 {
                let Some(&lead) = candidates.get(r.usize(0..candidates.len().max(1))) else {
                    break;
                };
                let t = ServiceTruth {
                    spec: spec.clone(),
                    peak_lead: lead,
                    peak,
                    width,
                };
                truth.services.push(t.clone());
                let best = truth.oracle(&spec.id, Channel::Email).map(|o| o.lead);
                truth.services.pop();
                if best.is_some_and(|b| b != spec.policy_lead) {
                    chosen = Some(t);
                    break;
                }
            }
            let t = chosen.unwrap_or_else(|| ServiceTruth {
                spec: spec.clone(),
                peak_lead: spec.grid.max,
                peak,
                width,
            });
            truth.services.push(t);
        }
        truth
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn service(&self, id: &str) -> Option<&ServiceTruth> {
        self.services.iter().find(|s| s.spec.id == id)
    }

    fn effects(&self, channel: Channel) -> &SlotEffects {
        match channel {
            Channel::Post | Channel::Phone => &self.post,
            Channel::Email => &self.email,
        }
    }

    /// A dealer's factor on every response chance: 0.6 to 1.4.
    pub fn dealer_factor(&self, dealer: &str) -> f64 {
        let key = dealer
            .bytes()
            .fold(0u64, |h, b| mix(h ^ u64::from(b)).wrapping_add(1));
        0.6 + rng(self.seed, key, SALT_DEALER).f64() * 0.8
    }

    /// A lead drawn uniformly over the service's grid (how the demo's
    /// previous system varied its reminders).
    pub fn any_lead(&self, service: &str, r: &mut fastrand::Rng) -> Option<u32> {
        let grid: Vec<u32> = self.service(service)?.spec.grid.leads().collect();
        grid.get(r.usize(0..grid.len().max(1))).copied()
    }

    /// The chance a message makes its recipient come, before the recipient
    /// factor: lead curve × slot × channel × dealer, at most 0.9.
    pub fn response_chance(
        &self,
        service: &str,
        channel: Channel,
        lead: i32,
        slot: Slot,
        dealer: f64,
    ) -> f64 {
        let Some(s) = self.service(service) else {
            return 0.0;
        };
        if lead < 0 {
            return 0.0;
        }
        let e = self.effects(channel);
        let z = (f64::from(lead) - f64::from(s.peak_lead)) / s.width;
        let p = s.peak
            * (FLOOR + (1.0 - FLOOR) * (-0.5 * z * z).exp())
            * e.base
            * e.weekday[usize::from(slot.weekday % 7)]
            * e.hour[usize::from(slot.hour % 24)]
            * dealer;
        p.clamp(0.0, 0.9)
    }

    /// The vehicle's organic visit for an occasion due on `due`: whether it
    /// comes without any message, and on which day. The same whatever is
    /// sent, so that runs of one seed with different policies share it.
    pub fn organic_visit(&self, service: &str, key: u64, due: Date) -> Option<Date> {
        let s = self.service(service)?;
        let mut r = rng(self.seed, mix(key) ^ due.days() as u64, SALT_ORGANIC);
        let (u, offset) = (r.u32(0..100), r.i32(-ORGANIC_BEFORE..=ORGANIC_AFTER));
        (u < s.spec.organic_percent).then(|| due.add_days(offset))
    }

    /// Whether the message makes its recipient come, and on which day
    /// (`None`: not because of the message). The recipient's visit is the
    /// earlier of this and their organic visit.
    pub fn response(&self, m: &Send) -> Option<Date> {
        let slot = Slot::of(m.send_on, m.send_at);
        let p = self.response_chance(
            m.service,
            m.channel,
            m.lead(),
            slot,
            self.dealer_factor(m.dealer),
        );
        let mut r = rng(
            self.seed,
            mix(m.key) ^ (m.send_on.days() as u64).wrapping_mul(0x9e37),
            SALT_RESPOND,
        );
        let (u, noise, delay) = (r.f64(), 0.5 + r.f64(), r.i32(1..=RESPONSE_DELAY_MAX));
        (u < (p * noise).min(0.95)).then(|| m.send_on.add_days(delay))
    }

    /// The visit that follows a message: the earlier of the response and
    /// the organic visit, if that is after the send day.
    pub fn visit_after(&self, m: &Send) -> Option<Date> {
        let organic = self
            .organic_visit(m.service, m.key, m.due)
            .filter(|&d| d > m.send_on);
        match (self.response(m), organic) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expected incremental responses of one message: the chance it brings
    /// the recipient within [`WINDOW_DAYS`] who would not have come in that
    /// window anyway (`p × (1 − P(organic in the window | not before))`).
    pub fn expected_incremental(
        &self,
        service: &str,
        channel: Channel,
        lead: i32,
        slot: Slot,
        dealer: f64,
    ) -> f64 {
        let Some(s) = self.service(service) else {
            return 0.0;
        };
        let p = self.response_chance(service, channel, lead, slot, dealer);
        let org = f64::from(s.spec.organic_percent) / 100.0;
        let span = f64::from(ORGANIC_BEFORE + ORGANIC_AFTER + 1);
        // Organic offsets o (visit on due + o); the send is due - lead.
        let (mut before, mut within) = (0.0, 0.0);
        for o in -ORGANIC_BEFORE..=ORGANIC_AFTER {
            if o <= -lead {
                before += org / span;
            } else if o <= -lead + WINDOW_DAYS {
                within += org / span;
            }
        }
        let control = within / (1.0 - before).max(1e-9);
        // The recipient factor averages 1; a response chance near the cap
        // loses a little there, which the truth ignores.
        p * (1.0 - control)
    }

    /// The best lead and slot of a service on a channel, within its grid
    /// and send window, and its expected incremental response per message
    /// at dealer factor 1.
    pub fn oracle(&self, service: &str, channel: Channel) -> Option<Oracle> {
        let s = self.service(service)?;
        let mut best: Option<Oracle> = None;
        let hours: Vec<u8> = match channel {
            Channel::Email => (s.spec.hours.0..s.spec.hours.1.max(s.spec.hours.0 + 1)).collect(),
            _ => vec![s.spec.hours.0],
        };
        for lead in s.spec.grid.leads() {
            for &weekday in &s.spec.weekdays {
                for &hour in &hours {
                    let slot = Slot { weekday, hour };
                    let inc = self.expected_incremental(service, channel, lead as i32, slot, 1.0);
                    if best.is_none_or(|b| inc > b.incremental) {
                        best = Some(Oracle {
                            lead,
                            slot,
                            incremental: inc,
                        });
                    }
                }
            }
        }
        best
    }
}

/// A channel's weekday and hour factors: one weekday and (for email) one
/// hour are best, the others weaker.
fn slot_effects(seed: u64, channel: u64, hourly: bool, base: f64) -> SlotEffects {
    let mut r = rng(seed, channel, SALT_SLOT);
    let best_day = r.usize(0..5);
    let mut weekday = [0.0; 7];
    for (d, w) in weekday.iter_mut().enumerate() {
        *w = if d == best_day {
            1.2
        } else {
            0.75 + r.f64() * 0.25
        };
    }
    let best_hour = r.i32(8..17);
    let mut hour = [1.0; 24];
    if hourly {
        for (h, w) in hour.iter_mut().enumerate() {
            let z = (h as i32 - best_hour) as f64 / 2.5;
            *w = 0.7 + 0.5 * (-0.5 * z * z).exp();
        }
    }
    SlotEffects {
        weekday,
        hour,
        base,
    }
}

/// The demo brand's services as the model knows them
/// (`policies/brand.toml`): lead, grid and send window.
pub fn demo_services() -> Vec<ServiceSpec> {
    vec![
        ServiceSpec {
            id: "service_due".into(),
            policy_lead: 21,
            grid: LeadGrid {
                min: 7,
                max: 56,
                step: 7,
            },
            weekdays: vec![0, 1, 2, 3, 4],
            hours: (8, 18),
            organic_percent: 55,
        },
        ServiceSpec {
            id: "hu_reminder".into(),
            policy_lead: 28,
            grid: LeadGrid {
                min: 14,
                max: 56,
                step: 7,
            },
            weekdays: vec![0, 1, 2, 3, 4],
            hours: (9, 17),
            organic_percent: 70,
        },
    ]
}

#[cfg(test)]
mod tests;

//! The planner's steps, in order, for one tenant and one day. Pure: the
//! history (what earlier runs planned and sent) comes in through [`History`],
//! so tests drive every step with hand-made data.

use std::collections::{BTreeMap, HashMap};

use touchpoint_common::domain::Channel;
use touchpoint_common::learning::{ANY_HOUR, ANY_WEEKDAY};
use touchpoint_common::money::Money;
use touchpoint_common::outbox::{month_of, Dropped, Message, MessageStatus, Occasion, Step, Why};
use touchpoint_common::policy::{BrandPolicy, Service, TenantPolicy, Weekday};
use touchpoint_common::Date;

use super::control;
use super::occasions::{self, Window};
use super::recipients::Recipient;
use crate::learning::Learned;
use crate::store::Contact;

/// What earlier runs left behind.
pub trait History {
    /// Whether an occasion was planned before (and not cancelled since).
    fn planned(&self, key: &str) -> bool;
    /// The recipient's messages that count as contacts.
    fn contacts(&self, recipient: &str) -> Vec<Contact>;
    /// Messages not yet sent per send day.
    fn day_load(&self) -> &BTreeMap<Date, u32>;
    /// Cost already reserved or booked per (month, service), cents.
    fn committed(&self, month: u32, service: &str) -> i64;
}

pub struct Input<'a> {
    pub tenant: &'a str,
    pub brand: &'a BrandPolicy,
    pub policy: &'a TenantPolicy,
    pub today: Date,
    /// What is learned from the pooled data (lead times, send slots).
    pub learned: &'a Learned,
    /// Email addresses and phone numbers (lower case) known to be wrong:
    /// hard bounces, numbers the call centre reported wrong.
    pub bad_addresses: &'a std::collections::HashMap<String, String>,
}

/// A message being shaped by the steps.
#[derive(Clone, Debug)]
pub struct Draft {
    pub recipient: usize,
    pub occasions: Vec<Occasion>,
    /// Channels every occasion allows, in the lead service's order.
    pub channels: Vec<Channel>,
    pub channel: Channel,
    pub service: String,
    /// Earliest and latest acceptable send day.
    pub earliest: Date,
    pub latest: Date,
    pub day: Date,
    pub value: i64,
    pub cost: i64,
    pub why: Vec<Why>,
}

/// A month (`YYYYMM`) and service: what a budget is kept by.
pub type BudgetKey = (u32, String);

/// A draft the budget step dropped: where it fell short, by how much, and
/// its place in the step's order (value, then day).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    pub key: BudgetKey,
    pub value: i64,
    pub day: Date,
    pub cost: i64,
    /// Its cost less what was left for it, cents (more than 0).
    pub short: i64,
}

#[derive(Default)]
pub struct Outcome {
    pub drafts: Vec<Draft>,
    pub dropped: Vec<Dropped>,
    pub occasions_found: u64,
    pub already_planned: u64,
    /// Minutes after midnight per accepted draft, parallel to `drafts`.
    pub times: Vec<u16>,
    /// Occasions drawn into their service's control group: recorded, never
    /// sent; each still one occasion, on the day it would have gone out.
    pub controls: Vec<Draft>,
    /// Drafts dropped for want of budget (not the value threshold): the
    /// recipient and, when dropped by the budget step, the draft as it
    /// waits (an incremental run plans such a recipient again only when
    /// enough is released there: `planner::Unsettled`); `None` when
    /// dropped by the send-time step's move into another month (it took
    /// budget in the budget step).
    pub budget_drops: Vec<(usize, Option<Waiting>)>,
    /// The months and services whose budget the send-time step gave back
    /// within the run (a funded draft dropped, or moved to another month):
    /// it was reserved ahead of others in the budget step.
    pub released_late: Vec<BudgetKey>,
    /// What the budget step funded per month and service (cents), so that
    /// an incremental run can tell those still waiting how much was taken
    /// there (`planner::carry`).
    pub funded: HashMap<BudgetKey, i64>,
}

fn why(step: Step, text: impl Into<String>) -> Why {
    Why {
        step,
        text: text.into(),
    }
}

fn drop_all(
    out: &mut Vec<Dropped>,
    r: &Recipient,
    occasions: &[Occasion],
    step: Step,
    reason: &str,
) {
    for o in occasions {
        out.push(Dropped {
            recipient: r.customer.customer_no.clone(),
            occasion: o.clone(),
            step,
            reason: reason.to_string(),
        });
    }
}

/// Whether a channel can carry a service to a recipient now, and why (not).
pub fn channel_check(
    r: &Recipient,
    c: Channel,
    service: &Service,
    input: &Input,
) -> Result<String, String> {
    if service.forbidden_channels.contains(&c) {
        return Err(format!("{c}: forbidden for this service"));
    }
    if !input.policy.channels.enabled.contains(&c) {
        return Err(format!("{c}: not used by this dealer"));
    }
    let cust = &r.customer;
    let reachable = match c {
        Channel::Email => cust.email.as_deref().is_some_and(|e| !e.is_empty()),
        Channel::Post => {
            let a = &cust.address;
            !a.street.is_empty() && !a.postcode.is_empty() && !a.city.is_empty()
        }
        Channel::Phone => cust.phone.as_deref().is_some_and(|p| !p.is_empty()),
    };
    if !reachable {
        return Err(format!(
            "{c}: no {}",
            match c {
                Channel::Email => "email address",
                Channel::Post => "complete postal address",
                Channel::Phone => "phone number",
            }
        ));
    }
    let address = match c {
        Channel::Email => cust.email.as_deref(),
        Channel::Phone => cust.phone.as_deref(),
        Channel::Post => None,
    };
    if let Some(a) = address {
        if let Some(reason) = input.bad_addresses.get(&a.trim().to_lowercase()) {
            return Err(format!("{c}: {a} is known to be wrong ({reason})"));
        }
    }
    if c == Channel::Email {
        if let Some(e) = cust.email.as_deref() {
            if input
                .policy
                .suppress
                .emails
                .iter()
                .any(|s| s.eq_ignore_ascii_case(e))
            {
                return Err(format!("email: {e} is on the dealer's suppression list"));
            }
        }
    }
    let rule = input.brand.channels.get(c).consent;
    super::consent::verdict(rule, c, r.consent(c), &r.customer.customer_no)
}

/// Why nothing is planned for a customer who objected to advertising.
pub(super) const OBJECTED: &str = "customer objected to advertising (Art. 21)";

fn is_suppressed(r: &Recipient, p: &TenantPolicy) -> bool {
    let s = &p.suppress.customers;
    s.contains(&r.customer.customer_no) || r.merged.iter().any(|m| s.contains(m))
}

/// Steps 1 to 4 for one recipient: occasions, channel, bundling,
/// consolidation and capping. Returns drafts with a cap-feasible day.
pub fn shape(
    ri: usize,
    r: &Recipient,
    input: &Input,
    history: &dyn History,
    out: &mut Outcome,
) -> Vec<Draft> {
    let brand = input.brand;
    let window = Window {
        today: input.today,
        horizon_days: brand.planning.horizon_days,
    };
    let mut found = Vec::new();
    for (id, ts) in &input.policy.services {
        if !ts.opt_in {
            continue;
        }
        let Some(service) = brand.services.get(id) else {
            continue;
        };
        let lead = input.learned.find_lead(id, service);
        occasions::find(r, id, service, lead, brand, &window, &mut found);
    }
    if found.is_empty() {
        return Vec::new();
    }
    out.occasions_found += found.len() as u64;
    let before = found.len();
    found.retain(|o| !history.planned(&o.key));
    out.already_planned += (before - found.len()) as u64;
    if found.is_empty() {
        return Vec::new();
    }
    if is_suppressed(r, input.policy) {
        drop_all(
            &mut out.dropped,
            r,
            &found,
            Step::Channel,
            "customer is on the dealer's suppression list",
        );
        return Vec::new();
    }
    if r.objected {
        drop_all(&mut out.dropped, r, &found, Step::Channel, OBJECTED);
        return Vec::new();
    }

    // 1. Consent and channel, per occasion.
    let mut singles: Vec<Draft> = Vec::new();
    for o in found {
        let Some(service) = brand.services.get(&o.service) else {
            continue;
        };
        let mandatory;
        let candidates: &[Channel] = match service.mandatory_channel {
            Some(m) => {
                mandatory = [m];
                &mandatory
            }
            None => &service.channels,
        };
        let mut ok = Vec::new();
        let mut notes = Vec::new();
        let mut refusals = Vec::new();
        for &c in candidates {
            match channel_check(r, c, service, input) {
                Ok(note) => {
                    ok.push(c);
                    notes.push(note);
                }
                Err(no) => refusals.push(no),
            }
        }
        let Some(&first) = ok.first() else {
            let mut reason = refusals.join("; ");
            if let Some(m) = service.mandatory_channel {
                reason = format!("the service must go by {m}: {reason}");
            }
            drop_all(
                &mut out.dropped,
                r,
                std::slice::from_ref(&o),
                Step::Channel,
                &reason,
            );
            continue;
        };
        // A control member is never explored on (`crate::learning`).
        let in_control = control::is_control(input.tenant, &r.customer.customer_no, &o, service);
        let pick = input
            .learned
            .lead(&o.service, service, first, &o.key, in_control);
        let lead = pick.value;
        let send_day = o.due.add_days(-(lead as i32));
        if input.learned.waits(
            &o.service,
            service,
            first,
            &o.key,
            in_control,
            send_day,
            window.today.add_days(window.horizon_days as i32),
        ) {
            // Found early for the grid's sake; planned when its lead in
            // force comes within the horizon (`Learned::waits`).
            out.occasions_found -= 1;
            continue;
        }
        let earliest = send_day.max(input.today);
        let latest = latest_send(&o, service).max(earliest);
        let mut w = vec![why(
            Step::Occasion,
            format!(
                "{} due {}{}: {}",
                o.service,
                o.due,
                o.vin
                    .as_deref()
                    .map(|v| format!(" for {v}"))
                    .unwrap_or_default(),
                o.reason
            ),
        )];
        let mut chan = format!("{first} ({}", notes[0]);
        if !refusals.is_empty() {
            chan.push_str("; not ");
            chan.push_str(&refusals.join("; "));
        }
        if service.mandatory_channel.is_some() {
            chan.push_str("; mandatory for the service");
        }
        chan.push(')');
        w.push(why(Step::Channel, chan));
        if let Some(text) = pick.why {
            w.push(why(Step::SendTime, text));
        }
        singles.push(Draft {
            recipient: ri,
            service: o.service.clone(),
            value: o.value,
            occasions: vec![o],
            channels: ok,
            channel: first,
            earliest,
            latest,
            day: earliest,
            cost: 0,
            why: w,
        });
    }
    if singles.is_empty() {
        return Vec::new();
    }
    if !r.merged.is_empty() {
        for d in &mut singles {
            d.why.insert(
                1,
                why(
                    Step::Occasion,
                    format!(
                        "recipient {} includes {} (identity merge)",
                        r.customer.customer_no,
                        r.merged.join(", ")
                    ),
                ),
            );
        }
    }

    // The control group, per occasion: after consent and channel, before
    // anything that spends a contact or money (see `control`).
    let (controls, mut singles): (Vec<Draft>, Vec<Draft>) = singles.into_iter().partition(|d| {
        let o = &d.occasions[0];
        brand
            .services
            .get(&o.service)
            .is_some_and(|s| control::is_control(input.tenant, &r.customer.customer_no, o, s))
    });
    for mut d in controls {
        let o = &d.occasions[0];
        if let Some(service) = brand.services.get(&o.service) {
            let text = control::why_text(&o.service, service, &control::season(o, service));
            d.why.push(why(Step::Control, text));
            d.day = d.earliest;
            out.controls.push(d);
        }
    }
    if singles.is_empty() {
        return Vec::new();
    }

    // 2. Bundling: occasions due within the window of the group's first one.
    singles.sort_by(|a, b| (a.occasions[0].due, &a.service).cmp(&(b.occasions[0].due, &b.service)));
    let bw = brand.planning.bundling_window_days as i32;
    let mut groups: Vec<Draft> = Vec::new();
    for d in singles {
        let due = d.occasions[0].due;
        let target = groups.iter_mut().find(|g| {
            due.days() - g.occasions[0].due.days() <= bw
                && g.channels.iter().any(|c| d.channels.contains(c))
        });
        match target {
            Some(g) if bw > 0 => absorb(g, d, Step::Bundling, brand),
            _ => groups.push(d),
        }
    }

    // 3. Consolidation: a holder's vehicles with the same service due in this
    // run get one message, however far apart.
    let mut merged: Vec<Draft> = Vec::new();
    for g in groups {
        let target = merged.iter_mut().find(|m| {
            vehicle_services(m).any(|s| vehicle_services(&g).any(|mine| mine == s))
                && m.channels.iter().any(|c| g.channels.contains(c))
        });
        match target {
            Some(m) => absorb(m, g, Step::Consolidation, brand),
            None => merged.push(g),
        }
    }
    for m in &mut merged {
        let vins: Vec<&str> = {
            let mut v: Vec<&str> = Vec::new();
            for o in &m.occasions {
                if let Some(x) = o.vin.as_deref() {
                    if !v.contains(&x) {
                        v.push(x);
                    }
                }
            }
            v
        };
        if vins.len() > 1 {
            let text = format!(
                "one message for {} vehicles of this holder: {}",
                vins.len(),
                vins.join(", ")
            );
            m.why.push(why(Step::Consolidation, text));
        }
    }

    // Next best offer, stage 1 (seed 002): nothing below the brand's
    // profitability threshold takes a contact a better offer could use.
    let min_value = brand.planning.min_value.cents();
    let (mut merged, cheap): (Vec<Draft>, Vec<Draft>) =
        merged.into_iter().partition(|d| d.value >= min_value);
    for d in cheap {
        let reason = format!(
            "expected value {} is below the brand's minimum of {}",
            money(d.value),
            brand.planning.min_value
        );
        drop_all(&mut out.dropped, r, &d.occasions, Step::Budget, &reason);
    }

    // 4. Frequency capping. The message that must go out soonest is placed
    // first (earliest deadline first), so one with room to move (a warranty
    // offer two months ahead) moves instead of crowding out one that cannot
    // (a service due next week); among equal deadlines, higher value first.
    merged.sort_by(|a, b| {
        (a.latest, std::cmp::Reverse(a.value), a.earliest).cmp(&(
            b.latest,
            std::cmp::Reverse(b.value),
            b.earliest,
        ))
    });
    let contacts: Vec<Date> = history
        .contacts(&r.customer.customer_no)
        .into_iter()
        .filter(|c| c.status.is_contact())
        .map(|c| c.day)
        .collect();
    // Next best offer, stage 2: when the contact rules do not let every
    // offer out, the best expected ones go (see `choose`).
    let choice = choose(&merged, &contacts, input);
    let mut kept = Vec::new();
    let mut contacts = contacts;
    let mut merged: Vec<Option<Draft>> = merged.into_iter().map(Some).collect();
    for lost in &choice.lost {
        if let Some(d) = merged[lost.index].take() {
            drop_all(
                &mut out.dropped,
                r,
                &d.occasions,
                Step::Capping,
                &lost.reason,
            );
        }
    }
    for (i, d) in merged.into_iter().enumerate() {
        let Some(mut d) = d else { continue };
        if let Some(text) = choice.won.iter().find(|w| w.0 == i).map(|w| w.1.clone()) {
            d.why.push(why(Step::Capping, text));
        }
        match first_capped_day(&contacts, d.earliest, d.latest, brand) {
            Ok(day) => {
                if day != d.earliest {
                    d.why.push(why(
                        Step::Capping,
                        format!(
                            "moved from {} to {day}: {}",
                            d.earliest,
                            cap_reason(&contacts, d.earliest, brand)
                        ),
                    ));
                } else {
                    d.why.push(why(
                        Step::Capping,
                        format!(
                            "{} other contact(s) within {} days, at most {} allowed",
                            count_within(&contacts, day, brand.contact.period_days as i32),
                            brand.contact.period_days,
                            brand.contact.max_contacts
                        ),
                    ));
                }
                d.day = day;
                contacts.push(day);
                kept.push(d);
            }
            Err(reason) => {
                let occ = d.occasions.clone();
                drop_all(&mut out.dropped, r, &occ, Step::Capping, &reason);
            }
        }
    }
    kept
}

/// What the next best offer decided for one recipient's drafts.
#[derive(Debug, Default)]
struct Choice {
    /// Drafts that lost to a better offer: index and the reason.
    lost: Vec<Lost>,
    /// Drafts that won over another: index and the why line naming the
    /// runner-up and the margin.
    won: Vec<(usize, String)>,
}

#[derive(Debug)]
struct Lost {
    index: usize,
    reason: String,
}

/// A draft's expected incremental return: the policy's value (the
/// expected value of one message as the policy plans it) scaled by what
/// learning found about the service and channel
/// (`Learned::value_factor`: the learned incremental response over the
/// policy's), the policy's value as it is while data is thin, minus the
/// channel's cost; in cents, with where the estimate came from.
pub fn expected(d: &Draft, input: &Input) -> (i64, String) {
    let mut value = 0.0;
    let mut learned = Vec::new();
    for o in &d.occasions {
        match input.learned.value_factor(&o.service, d.channel) {
            Some((f, evidence)) => {
                value += f * o.value as f64;
                learned.push(format!("{}: {evidence}", o.service));
            }
            None => value += o.value as f64,
        }
    }
    let cost = input.brand.channels.get(d.channel).cost.cents();
    let how = if learned.is_empty() {
        "policy value".to_string()
    } else {
        learned.join("; ")
    };
    (value.round() as i64 - cost, how)
}

/// Whether the drafts (indices into `drafts`, in its order) all find a day
/// within the contact rules, placed as step 4 places them; else why not.
fn fits(
    drafts: &[Draft],
    which: &[usize],
    contacts: &[Date],
    brand: &BrandPolicy,
) -> Result<(), String> {
    let mut cs = contacts.to_vec();
    for &i in which {
        let d = &drafts[i];
        cs.push(first_capped_day(&cs, d.earliest, d.latest, brand)?);
    }
    Ok(())
}

/// Next best offer, stage 2 (seed 002): the drafts are taken by expected
/// return ([`expected`]), highest first (ties: step 4's order), each kept
/// when it still fits with those kept before. When every draft fits, all
/// are kept and nothing is said: step 4's order alone places them. A draft
/// that does not fit even alone is left to step 4, which drops it with the
/// contact rule it breaks.
fn choose(drafts: &[Draft], contacts: &[Date], input: &Input) -> Choice {
    let brand = input.brand;
    let mut choice = Choice::default();
    let all: Vec<usize> = (0..drafts.len()).collect();
    if drafts.len() < 2 || fits(drafts, &all, contacts, brand).is_ok() {
        return choice;
    }
    let score: Vec<(i64, String)> = drafts.iter().map(|d| expected(d, input)).collect();
    let mut rank = all.clone();
    rank.sort_by(|&a, &b| score[b].0.cmp(&score[a].0).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = Vec::new();
    for &i in &rank {
        let mut trial = chosen.clone();
        trial.push(i);
        trial.sort_unstable();
        match fits(drafts, &trial, contacts, brand) {
            Ok(()) => chosen = trial,
            Err(_) => {
                if fits(drafts, &[i], contacts, brand).is_err() {
                    continue;
                }
                // Why it has no day once the better ones have theirs.
                let after: Vec<usize> = chosen.iter().copied().chain([i]).collect();
                let reason = fits(drafts, &after, contacts, brand)
                    .err()
                    .unwrap_or_default();
                // The offer it lost to: the best kept one without which it
                // would fit, else the best kept one.
                let winner = rank
                    .iter()
                    .copied()
                    .filter(|w| chosen.contains(w))
                    .find(|&w| {
                        let mut without: Vec<usize> = chosen
                            .iter()
                            .copied()
                            .filter(|&c| c != w)
                            .chain([i])
                            .collect();
                        without.sort_unstable();
                        fits(drafts, &without, contacts, brand).is_ok()
                    })
                    .or_else(|| rank.iter().copied().find(|w| chosen.contains(w)));
                let Some(w) = winner else { continue };
                let line = format!(
                    "chose {} over {}: {} € vs {} € expected",
                    drafts[w].service,
                    drafts[i].service,
                    Money(score[w].0),
                    Money(score[i].0)
                );
                choice.lost.push(Lost {
                    index: i,
                    reason: format!(
                        "next best offer: {line} ({}); the contact rules allow only one: {reason}",
                        score[i].1
                    ),
                });
                if !choice.won.iter().any(|x| x.0 == w) {
                    choice
                        .won
                        .push((w, format!("next best offer: {line} ({})", score[w].1)));
                }
            }
        }
    }
    choice
}

/// The services of a draft's per-vehicle occasions.
fn vehicle_services(d: &Draft) -> impl Iterator<Item = &str> {
    d.occasions
        .iter()
        .filter(|o| o.kind.per_vehicle())
        .map(|o| o.service.as_str())
}

/// The last day a message for this occasion is still useful.
fn latest_send(o: &Occasion, s: &Service) -> Date {
    use touchpoint_common::policy::OccasionKind as K;
    match o.kind {
        K::Campaign => s.to.map(|d| d.0).unwrap_or(o.due),
        K::Journey => o.due.add_days(occasions::JOURNEY_GRACE_DAYS),
        K::Birthday => o.due,
        _ => o.due.add_days(-1),
    }
}

/// Joins `d` into `g`: the union of occasions; the channel the two share
/// first in `g`'s order; the earlier window; the lead service is the one of
/// higher value.
fn absorb(g: &mut Draft, d: Draft, step: Step, brand: &BrandPolicy) {
    let shared: Vec<Channel> = g
        .channels
        .iter()
        .copied()
        .filter(|c| d.channels.contains(c))
        .collect();
    let names = |ds: &[Occasion]| {
        ds.iter()
            .map(|o| format!("{} due {}", o.service, o.due))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = match step {
        Step::Bundling => format!(
            "{} joins {}: due within {} days",
            names(&d.occasions),
            names(&g.occasions[..1]),
            brand.planning.bundling_window_days
        ),
        _ => format!("{} joins {}", names(&d.occasions), names(&g.occasions[..1])),
    };
    if shared.first() != Some(&g.channel) {
        if let Some(&c) = shared.first() {
            g.why.push(why(
                Step::Channel,
                format!(
                    "{c} instead of {}: the channel both occasions allow",
                    g.channel
                ),
            ));
            g.channel = c;
        }
    }
    g.channels = shared;
    g.value += d.value;
    g.earliest = g.earliest.min(d.earliest);
    g.latest = g.latest.min(d.latest).max(g.earliest);
    g.occasions.extend(d.occasions);
    // The occasion of the highest value leads: its service pays and its
    // template frames the message.
    if let Some(best) = g.occasions.iter().max_by_key(|o| o.value) {
        g.service = best.service.clone();
    }
    g.why.push(why(step, text));
    for w in d.why {
        if w.step == Step::Occasion && !g.why.contains(&w) {
            g.why.push(w);
        }
    }
}

fn count_within(contacts: &[Date], day: Date, period: i32) -> usize {
    contacts
        .iter()
        .filter(|c| (c.days() - day.days()).abs() < period)
        .count()
}

/// Whether one more contact on `day` keeps every rolling window of
/// `period_days` at or below `max_contacts` and every gap at `min_gap_days`.
pub fn cap_ok(contacts: &[Date], day: Date, brand: &BrandPolicy) -> bool {
    let rules = &brand.contact;
    let gap = rules.min_gap_days as i32;
    if contacts.iter().any(|c| (c.days() - day.days()).abs() < gap) {
        return false;
    }
    let p = rules.period_days as i32;
    // Every window [s, s + p) that contains `day`.
    (day.days() - p + 1..=day.days()).all(|s| {
        let n = contacts
            .iter()
            .filter(|c| c.days() >= s && c.days() < s + p)
            .count();
        n < rules.max_contacts as usize
    })
}

fn cap_reason(contacts: &[Date], day: Date, brand: &BrandPolicy) -> String {
    let rules = &brand.contact;
    let gap = rules.min_gap_days as i32;
    if let Some(c) = contacts
        .iter()
        .find(|c| (c.days() - day.days()).abs() < gap)
    {
        return format!("contacted on {c}, minimum gap {gap} days");
    }
    let mut near: Vec<Date> = contacts
        .iter()
        .copied()
        .filter(|c| (c.days() - day.days()).abs() < rules.period_days as i32)
        .collect();
    near.sort();
    let list: Vec<String> = near.iter().map(ToString::to_string).collect();
    format!(
        "at most {} contacts in {} days; contacted on {}",
        rules.max_contacts,
        rules.period_days,
        list.join(", ")
    )
}

fn first_capped_day(
    contacts: &[Date],
    from: Date,
    to: Date,
    brand: &BrandPolicy,
) -> Result<Date, String> {
    let mut d = from;
    while d <= to {
        if cap_ok(contacts, d, brand) {
            return Ok(d);
        }
        d = d.add_days(1);
    }
    Err(format!(
        "no day from {from} to {to} within the contact rules: {}",
        cap_reason(contacts, from, brand)
    ))
}

/// Step 5: budget. The drafts (none below the brand's value threshold:
/// step 4 dropped those before they took a contact) are taken by expected
/// value, highest first, while the service's budget for the month lasts.
pub fn budget(
    drafts: Vec<Draft>,
    recipients: &[Recipient],
    input: &Input,
    history: &dyn History,
    spent: &mut HashMap<(u32, String), i64>,
    out: &mut Outcome,
) -> Vec<Draft> {
    let brand = input.brand;
    let mut drafts = drafts;
    drafts.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then(a.day.cmp(&b.day))
            .then(a.recipient.cmp(&b.recipient))
    });
    let mut kept = Vec::with_capacity(drafts.len());
    for mut d in drafts {
        let r = &recipients[d.recipient];
        d.cost = brand.channels.get(d.channel).cost.cents();
        match reserve(&d, d.day, input, history, spent) {
            Ok(text) => {
                *out.funded
                    .entry((month_of(d.day), d.service.clone()))
                    .or_default() += d.cost;
                d.why.push(why(Step::Budget, text));
                kept.push(d);
            }
            Err((reason, left)) => {
                let waiting = Waiting {
                    key: (month_of(d.day), d.service.clone()),
                    value: d.value,
                    day: d.day,
                    cost: d.cost,
                    short: d.cost - left.max(0),
                };
                out.budget_drops.push((d.recipient, Some(waiting)));
                drop_all(&mut out.dropped, r, &d.occasions, Step::Budget, &reason)
            }
        }
    }
    kept
}

/// Reserves a draft's cost in the month of `day`, or says why not (and
/// what was left).
fn reserve(
    d: &Draft,
    day: Date,
    input: &Input,
    history: &dyn History,
    spent: &mut HashMap<(u32, String), i64>,
) -> Result<String, (String, i64)> {
    let month = month_of(day);
    let budget = input
        .policy
        .services
        .get(&d.service)
        .map(|s| s.monthly_budget.cents())
        .unwrap_or(0);
    let used = spent
        .entry((month, d.service.clone()))
        .or_insert_with(|| history.committed(month, &d.service));
    let left = budget - *used;
    if d.cost > left {
        return Err((
            format!(
                "{} budget for {}-{:02} has {} left of {}, the message costs {} (value {})",
                d.service,
                month / 100,
                month % 100,
                money(left.max(0)),
                money(budget),
                money(d.cost),
                money(d.value)
            ),
            left,
        ));
    }
    *used += d.cost;
    Ok(format!(
        "{} of {} {} budget for {}-{:02} reserved, {} left (value {})",
        money(d.cost),
        money(budget),
        d.service,
        month / 100,
        month % 100,
        money(left - d.cost),
        money(d.value)
    ))
}

fn money(cents: i64) -> String {
    touchpoint_common::money::Money(cents).to_string()
}

/// The fourth part of a send time's draw (see [`schedule`]).
const SEND_TIME_DRAW: &str = "send time";

/// Step 6: send day and time. From the capped day on (then back towards the
/// earliest day), the first day that is no quiet day, in the service's
/// window, within the contact rules and below the tenant's daily capacity.
pub fn schedule(
    drafts: Vec<Draft>,
    recipients: &[Recipient],
    input: &Input,
    history: &dyn History,
    spent: &mut HashMap<(u32, String), i64>,
    out: &mut Outcome,
) {
    let brand = input.brand;
    let cap = input.policy.channels.daily_capacity;
    let mut load: BTreeMap<Date, u32> = history.day_load().clone();
    let mut per_recipient: HashMap<usize, Vec<Date>> = HashMap::new();
    let mut drafts = drafts;
    drafts.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then(a.day.cmp(&b.day))
            .then(a.recipient.cmp(&b.recipient))
    });
    for mut d in drafts {
        let r = &recipients[d.recipient];
        let Some(service) = brand.services.get(&d.service) else {
            continue;
        };
        let contacts = per_recipient.entry(d.recipient).or_insert_with(|| {
            history
                .contacts(&r.customer.customer_no)
                .into_iter()
                .filter(|c| c.status.is_contact())
                .map(|c| c.day)
                .collect()
        });
        let mut skipped: Vec<String> = Vec::new();
        let usable = |day: Date, skipped: &mut Vec<String>| -> bool {
            let wd = Weekday::of(day);
            let reason = if brand.calendar.quiet_weekdays.contains(&wd) {
                Some(format!("{day} is a quiet day ({wd:?})").to_lowercase())
            } else if brand.calendar.holidays.iter().any(|h| h.0 == day) {
                Some(format!("{day} is a public holiday"))
            } else if !service.send_window.weekdays.contains(&wd) {
                Some(format!("{day} is outside the send window").to_lowercase())
            } else if load.get(&day).copied().unwrap_or(0) >= cap {
                Some(format!("{day} is full ({cap} messages)"))
            } else if !cap_ok(contacts, day, brand) {
                Some(format!("{day} breaks the contact rules"))
            } else {
                None
            };
            match reason {
                Some(r) => {
                    if skipped.len() < 4 {
                        skipped.push(r);
                    }
                    false
                }
                None => true,
            }
        };
        // A learned (or explored) slot: its weekday nearest the day found,
        // at most min(3, (step − 1) / 2) days either way (less than half a
        // lead step, so the message stays in the lead's arm), never before
        // the earliest day (a longer lead than chosen) nor after the
        // latest, if the rules allow that day.
        let key = d
            .occasions
            .iter()
            .find(|o| o.service == d.service)
            .map(|o| o.key.clone())
            .unwrap_or_default();
        let slot = input
            .learned
            .slot(&d.service, service, d.channel, &key, false);
        // An hour-only slot moves no day: its hour applies on the day found.
        let slot_day = slot
            .as_ref()
            .filter(|p| p.value.0 < ANY_WEEKDAY)
            .and_then(|p| {
                let reach = slot_reach(service);
                let mut offsets: Vec<i32> = (-reach..=reach).collect();
                offsets.sort_by_key(|o| (o.abs(), *o));
                offsets.into_iter().map(|o| d.day.add_days(o)).find(|&day| {
                    day >= d.earliest.max(input.today)
                        && day <= d.latest
                        && Weekday::of(day) as u8 == p.value.0
                        && usable(day, &mut Vec::new())
                })
            });
        let forward = slot_day.or_else(|| {
            let mut day = d.day;
            let mut found = None;
            while day <= d.latest {
                if usable(day, &mut skipped) {
                    found = Some(day);
                    break;
                }
                day = day.add_days(1);
            }
            found
        });
        let chosen = forward.or_else(|| {
            let mut day = d.day.add_days(-1);
            while day >= d.earliest {
                if usable(day, &mut skipped) {
                    return Some(day);
                }
                day = day.add_days(-1);
            }
            None
        });
        let Some(day) = chosen else {
            let reason = format!(
                "no send day from {} to {}: {}",
                d.earliest,
                d.latest,
                skipped.join("; ")
            );
            release(&d, spent);
            out.released_late.push((month_of(d.day), d.service.clone()));
            drop_all(&mut out.dropped, r, &d.occasions, Step::SendTime, &reason);
            continue;
        };
        if month_of(day) != month_of(d.day) {
            release(&d, spent);
            out.released_late.push((month_of(d.day), d.service.clone()));
            if let Err((reason, _)) = reserve(&d, day, input, history, spent) {
                out.budget_drops.push((d.recipient, None));
                drop_all(&mut out.dropped, r, &d.occasions, Step::Budget, &reason);
                continue;
            }
        }
        let n = load.entry(day).or_insert(0);
        let w = &service.send_window;
        let span = u32::from(w.to.minutes() - w.from.minutes()).max(1);
        // The slot's hour (the part of it inside the window), whatever
        // became of its weekday: an email's only, as a letter goes with its
        // day's batch and a call with the day's list.
        let weekday_taken = slot_day == Some(day);
        let hour = slot
            .as_ref()
            .filter(|p| p.value.1 < ANY_HOUR && d.channel == Channel::Email)
            .and_then(|p| {
                let h = u16::from(p.value.1) * 60;
                let (start, end) = (h.max(w.from.minutes()), (h + 60).min(w.to.minutes()));
                (start < end).then_some((start, end))
            });
        // Where in its span a message goes: a five-minute step drawn from
        // (tenant, recipient, service), not the day's running count. A
        // count put a small dealer's few emails of a day all in the
        // window's first hour or two, so the fixed policy paid for those
        // hours and the hour arms learned the rest of the day from
        // exploring messages alone; the draw spreads a dealer's recipients
        // evenly over the window, and a message goes at the same time in
        // every run and on whatever day it lands, whatever else the day
        // holds. (The fourth part is no season, so the draw is not the
        // control group's.)
        let step = |from: u16, length: u32| -> u16 {
            let steps = u64::from((length / 5).max(1));
            let drawn = control::draw(
                input.tenant,
                &r.customer.customer_no,
                &d.service,
                SEND_TIME_DRAW,
            );
            from + (5 * (drawn % steps)) as u16
        };
        let at = match hour {
            // In the slot's hour.
            Some((start, end)) => step(start, u32::from(end - start)),
            // A letter or a call in the window's first hour: its batch or
            // call list closes later in the day (16:00 by default), and one
            // placed after that would go a day late.
            None if d.channel != Channel::Email => step(w.from.minutes(), span.min(60)),
            // Otherwise anywhere in the window.
            None => step(w.from.minutes(), span),
        };
        *n += 1;
        // What of a learned (or explored) slot was taken says so, with its
        // evidence, and what could not be.
        let slot_note = slot
            .as_ref()
            .filter(|_| weekday_taken || hour.is_some())
            .and_then(|p| {
                let why = p.why.as_deref()?;
                let mut note = format!("; {why}");
                if p.value.0 < ANY_WEEKDAY && !weekday_taken {
                    note.push_str(" (its weekday out of reach)");
                }
                if p.value.1 < ANY_HOUR && hour.is_none() {
                    note.push_str(" (its hour not taken)");
                }
                Some(note)
            })
            .unwrap_or_default();
        let moved = if day != d.day && slot_day == Some(day) {
            format!(" (from {}: the slot's weekday)", d.day)
        } else if day != d.day {
            format!(" (from {}: {})", d.day, skipped.join("; "))
        } else {
            String::new()
        };
        d.why.push(why(
            Step::SendTime,
            format!(
                "{day} {:02}:{:02}{moved}; window {} {}-{}{slot_note}",
                at / 60,
                at % 60,
                weekdays(&w.weekdays),
                w.from,
                w.to
            ),
        ));
        contacts.push(day);
        d.day = day;
        out.times.push(at);
        out.drafts.push(d);
    }
}

/// How many days a learned slot may move a message either way: three at
/// most, and less than half the service's lead step.
fn slot_reach(service: &Service) -> i32 {
    let step = service.lead_bounds().2.max(1) as i32;
    ((step - 1) / 2).min(3)
}

fn release(d: &Draft, spent: &mut HashMap<(u32, String), i64>) {
    if let Some(v) = spent.get_mut(&(month_of(d.day), d.service.clone())) {
        *v -= d.cost;
    }
}

fn weekdays(days: &[Weekday]) -> String {
    days.iter()
        .map(|d| format!("{d:?}").to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// Builds the stored message from a finished draft.
pub fn message(
    d: Draft,
    at: u16,
    id: u64,
    r: &Recipient,
    input: &Input,
    fingerprint: u64,
) -> Message {
    let template = input
        .brand
        .services
        .get(&d.service)
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let domain = input
        .policy
        .sender
        .email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty());
    let message_id = match domain {
        Some(domain) => format!("<tp.{}.{id}@{domain}>", input.tenant),
        None => format!(
            "<tp.{}.{id}@{}.touchpoint.invalid>",
            input.tenant, input.brand.brand.id
        ),
    };
    let now = touchpoint_common::domain::Timestamp::now();
    Message {
        id,
        message_id,
        recipient: r.customer.customer_no.clone(),
        channel: d.channel,
        service: d.service,
        template,
        occasions: d.occasions,
        send_on: d.day,
        send_at: at,
        cost: d.cost,
        value: d.value,
        status: MessageStatus::Planned,
        why: d.why,
        planned_at: now,
        policy: fingerprint,
        history: vec![(now, MessageStatus::Planned, "planned".into())],
        dispatch: Default::default(),
    }
}
